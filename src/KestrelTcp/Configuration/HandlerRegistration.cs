using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Configuration;

/// <summary>A <see cref="ConnectionHandler"/> type registered under the name configuration refers to.</summary>
internal sealed class HandlerRegistration
{
    internal HandlerRegistration(string name, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] Type handlerType, Func<IConfigurationSection, ICollection<string>, object?> parseOptions)
    {
        Name = name;
        HandlerType = handlerType;
        ParseOptions = parseOptions;
    }

    /// <summary>The name a listener's <c>Handler</c> key refers to (compared case-insensitively).</summary>
    public string Name { get; }

    /// <summary>The handler type, created once per listener.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)]
    public Type HandlerType { get; }

    internal Func<IConfigurationSection, ICollection<string>, object?> ParseOptions { get; }
}
